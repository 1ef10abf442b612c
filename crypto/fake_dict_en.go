package crypto

// English dictionaries for the fake kinds (fake.go): common given names
// and surnames of the UK and the US, street names, cities and company
// name parts. Each list is comma-separated; entries hold no commas.
// They are read, never changed.
const (
	enFirstNames = `James, John, Robert, Michael, William, David, Richard, Joseph, Thomas, Charles,
Christopher, Daniel, Matthew, Anthony, Mark, Donald, Steven, Paul, Andrew, Joshua,
Kenneth, Kevin, Brian, George, Timothy, Ronald, Edward, Jason, Jeffrey, Ryan,
Jacob, Gary, Nicholas, Eric, Jonathan, Stephen, Larry, Justin, Scott, Brandon,
Benjamin, Samuel, Gregory, Alexander, Frank, Patrick, Raymond, Jack, Dennis, Jerry,
Tyler, Aaron, Jose, Adam, Nathan, Henry, Douglas, Zachary, Peter, Kyle,
Oliver, Harry, Oscar, Charlie, Leo, Alfie, Freddie, Archie, Theo, Arthur,
Noah, Ethan, Liam, Lucas, Mason, Logan, Elijah, Aiden, Owen, Dylan,
Mary, Patricia, Jennifer, Linda, Elizabeth, Barbara, Susan, Jessica, Sarah, Karen,
Lisa, Nancy, Betty, Margaret, Sandra, Ashley, Kimberly, Emily, Donna, Michelle,
Carol, Amanda, Dorothy, Melissa, Deborah, Stephanie, Rebecca, Sharon, Laura, Cynthia,
Kathleen, Amy, Angela, Shirley, Anna, Brenda, Pamela, Emma, Nicole, Helen,
Samantha, Katherine, Christine, Debra, Rachel, Carolyn, Janet, Catherine, Maria, Heather,
Diane, Ruth, Julie, Olivia, Joyce, Virginia, Victoria, Kelly, Lauren, Christina,
Joan, Evelyn, Judith, Megan, Andrea, Cheryl, Hannah, Jacqueline, Martha, Gloria,
Amelia, Isla, Ava, Mia, Ivy, Lily, Isabella, Sophia, Grace, Freya,
Florence, Poppy, Willow, Rosie, Sienna, Evie, Ella, Daisy, Chloe, Phoebe,
Abigail, Madison, Harper, Charlotte, Zoe, Chelsea, Natalie, Bethany, Holly, Jade`

	enLastNames = `Smith, Johnson, Williams, Brown, Jones, Garcia, Miller, Davis, Rodriguez, Martinez,
Hernandez, Lopez, Gonzalez, Wilson, Anderson, Thomas, Taylor, Moore, Jackson, Martin,
Lee, Perez, Thompson, White, Harris, Sanchez, Clark, Ramirez, Lewis, Robinson,
Walker, Young, Allen, King, Wright, Scott, Torres, Nguyen, Hill, Flores,
Green, Adams, Nelson, Baker, Hall, Rivera, Campbell, Mitchell, Carter, Roberts,
Gomez, Phillips, Evans, Turner, Diaz, Parker, Cruz, Edwards, Collins, Reyes,
Stewart, Morris, Morales, Murphy, Cook, Rogers, Gutierrez, Ortiz, Morgan, Cooper,
Peterson, Bailey, Reed, Kelly, Howard, Ramos, Kim, Cox, Ward, Richardson,
Watson, Brooks, Chavez, Wood, James, Bennett, Gray, Mendoza, Ruiz, Hughes,
Price, Alvarez, Castillo, Sanders, Patel, Myers, Long, Ross, Foster, Jimenez,
Powell, Jenkins, Perry, Russell, Sullivan, Bell, Coleman, Butler, Henderson, Barnes,
Gonzales, Fisher, Vasquez, Simmons, Romero, Jordan, Patterson, Alexander, Hamilton, Graham,
Reynolds, Griffin, Wallace, Moreno, West, Cole, Hayes, Bryant, Herrera, Gibson,
Ellis, Tran, Medina, Aguilar, Stevens, Murray, Ford, Castro, Marshall, Owens,
Harrison, Fernandez, McDonald, Woods, Washington, Kennedy, Wells, Vargas, Henry, Chen,
Freeman, Webb, Tucker, Guzman, Burns, Crawford, Olson, Simpson, Porter, Hunter,
Gordon, Mendez, Silva, Shaw, Snyder, Mason, Dixon, Munoz, Hunt, Hicks,
Holmes, Palmer, Wagner, Black, Robertson, Boyd, Rose, Stone, Salazar, Fox,
Warren, Mills, Meyer, Rice, Schmidt, Garza, Daniels, Ferguson, Nichols, Stephens,
Davies, Hughes, Lloyd, Knight, Hopkins, Chapman, Pearson, Dawson, Barker, Fletcher`

	enStreets = `High Street, Station Road, Main Street, Church Street, Park Road, London Road, Victoria Road, Green Lane, Manor Road, Church Lane,
Park Avenue, The Avenue, The Crescent, Queens Road, New Road, Grange Road, Kings Road, Kingsway, Windsor Road, Highfield Road,
Mill Lane, Alexandra Road, York Road, School Lane, North Street, South Street, West Street, East Street, Albert Road, Springfield Road,
Elm Street, Oak Street, Maple Avenue, Pine Street, Cedar Lane, Birch Road, Willow Way, Chestnut Close, Ash Grove, Beech Drive,
Washington Street, Lincoln Avenue, Jefferson Street, Madison Avenue, Franklin Street, Jackson Street, Lake Street, Hill Street, River Road, Sunset Boulevard,
Broadway, Market Street, Bridge Street, Castle Street, Mill Road, Orchard Road, Meadow Lane, Farm Lane, Forest Road, Valley Road,
Spring Street, Prospect Street, Union Street, Water Street, Front Street, Center Street, Court Street, College Avenue, Garden Street, Harbour Road`

	enCities = `London, Birmingham, Manchester, Leeds, Liverpool, Sheffield, Bristol, Newcastle, Nottingham, Leicester,
Coventry, Bradford, Southampton, Portsmouth, Plymouth, Reading, Derby, Wolverhampton, Norwich, Oxford,
Cambridge, York, Bath, Exeter, Brighton, Cardiff, Swansea, Edinburgh, Glasgow, Aberdeen,
Dundee, Belfast, Chester, Lancaster, Durham, Carlisle, Ipswich, Luton, Milton Keynes, Northampton,
New York, Los Angeles, Chicago, Houston, Phoenix, Philadelphia, San Antonio, San Diego, Dallas, Austin,
Jacksonville, Columbus, Charlotte, Indianapolis, Seattle, Denver, Boston, Nashville, Detroit, Portland,
Memphis, Louisville, Baltimore, Milwaukee, Albuquerque, Tucson, Fresno, Sacramento, Atlanta, Omaha,
Raleigh, Miami, Minneapolis, Tulsa, Cleveland, Wichita, Arlington, Tampa, Pittsburgh, Cincinnati,
Springfield, Madison, Salem, Fairview, Georgetown, Franklin, Clinton, Greenville, Bristol, Dover`

	// enCompanyWords name a trade; a company is "<surname> <trade> <legal form>".
	enCompanyWords = `Builders, Logistics, Electrical, Engineering, Holdings, Consulting, Software, Media, Printing, Transport,
Trading, Systems, Plumbing, Roofing, Landscaping, Travel, Optics, Foods, Beverages, Textiles,
Furniture, Packaging, Energy, Solar, Technologies, Plastics, Tools, Freight, Accountancy, Recruitment,
Security, Cleaning, Catering, Bakery, Motors, Pharmaceuticals, Analytics, Ventures, Partners, Industries`

	enLegalForms = `Ltd, Inc, LLC, plc, Corp., LLP, & Co.`
)
