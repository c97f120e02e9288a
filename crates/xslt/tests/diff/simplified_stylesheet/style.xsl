<result xsl:version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <count><xsl:value-of select="count(//order)"/></count>
  <xsl:for-each select="//customer"><name><xsl:value-of select="."/></name></xsl:for-each>
</result>
